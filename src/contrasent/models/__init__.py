"""The encoder and everything it is made of or saved as: settings (:mod:`.config`, no torch), pooling,
padding-free forward passes, :class:`~contrasent.models.encoder.SentenceEncoder`, folder formats
(:mod:`.folders`), the model card (:mod:`.card`) and Hub upload (:mod:`.hub`).

Import from the modules themselves (``from contrasent.models.encoder import SentenceEncoder``) or from
the package face ``contrasent``; this file imports nothing, so that ``contrasent.models.config`` loads
without torch.
"""
