"""A trained model in use: search images and tag them in any language; export and load a model."""
