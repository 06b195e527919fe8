"""A trained model in use: search images and tag them in any language; export and load a model.

The Python API, in three lines (:mod:`repro.app.model`)::

    from repro import app
    m = app.load("runs/x")                              # a run folder or an exported model
    m.search(["un chat", "a dog"], lang="fr", k=5)      # one Search (its hits) per query
    m.tag(["img.png"], langs=["pl", "ja"], k=5)         # one Tagged (its tags) per image
"""

from repro.app.model import Model, load
from repro.app.results import Hit, ImageSetInfo, ModelInfo, Picture, Search, Tag, Tagged

__all__ = ["load", "Model", "Hit", "ImageSetInfo", "ModelInfo", "Picture", "Search", "Tag",
           "Tagged"]
