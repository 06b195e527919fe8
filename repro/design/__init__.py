"""The experiment design: arms and their chosen settings, seeds, curves, protocol rows."""
