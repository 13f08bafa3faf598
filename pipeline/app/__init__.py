"""The analyst app's library side: queries and HTML builders (``queries``, ``render``, ``rates``)
with no Streamlit import, and the Streamlit pages (``views``), imported only by ``app.py``.

Crawled text is untrusted: every piece of it that reaches HTML goes through ``html.escape``
(see ``render``); everything else is shown with Streamlit elements that render plain text.
"""
