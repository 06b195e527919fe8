"""The frozen towers: text towers and image backbones (one registry each), their on-disk feature
cache, controlled test-time changes of a tower."""
