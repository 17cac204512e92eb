"""The casting room's web dashboard, served by ``castroom serve`` at ``/``.

It lives in ``sync/`` because the page is a sync peer like any other (it joins the
``/sync/{id}`` WebSocket) and its JSON API shares the server's tokens and starlette app;
``core`` must not depend on a web framework. ``src/`` holds the JavaScript sources (not
shipped), ``static/`` the bundle built from them by ``make web`` (committed, shipped in
the wheel, so nobody builds anything on their machine).
"""
