"""defintel analyst app (Streamlit). Thin: the pages live in ``pipeline.app.views``.

Run with ``defintel app`` or ``streamlit run app.py``; the data dir comes from
``DEFINTEL_DATA_DIR`` (default ./data) and an optional ``DEFINTEL_CONFIG`` TOML file (which may
hold an ``[app.usd_rates]`` table). Crawled text is untrusted: HTML is built only in
``pipeline.app.render``, which escapes every piece of it.
"""

from __future__ import annotations

from pipeline.app.views import main

main()
