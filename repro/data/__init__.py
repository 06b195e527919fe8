"""The data: the paper's (XTD10, MSCOCO 2014, language codes) and the offline emoji benchmark of
the mini profile; caption text identity."""
