"""The workbench's pages: server-rendered Jinja2 shells that call the JSON API from the browser.

``mount(app)`` adds ``/`` (a redirect to ``/explore``), the four pages ``/explore``, ``/review``,
``/audiences`` and ``/runs``, and the static files under ``/static`` (the pages' JavaScript and CSS,
and cytoscape.js in its built form from the npm registry, so the pages work offline). The shells
hold no data: every page fetches what it shows from ``/api`` (sending ``Authorization: Bearer``
when the first URL carried ``?token=``; ``static/workbench.js`` keeps it in session storage).

When the app checks a token, a page or static file is admitted with the token in its URL (see
:mod:`workbench.app`): a shell loaded that way writes the token into its static URLs, and the
pages' script adds it to the links between pages.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape

HERE = Path(__file__).parent
PAGES = {
    "explore": "Explore",
    "review": "Review mined facts",
    "audiences": "Audiences",
    "runs": "Runs",
}


def _environment() -> Environment:
    return Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]))


def mount(app: FastAPI) -> None:
    """Add the pages and ``/static`` to ``app``."""
    env = _environment()
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.get("/", include_in_schema=False)
    def home(request: Request) -> RedirectResponse:
        query = request.url.query
        return RedirectResponse("/explore" + (f"?{query}" if query else ""), status_code=307)

    for page in PAGES:
        app.add_api_route(f"/{page}", _page(env, page), methods=["GET"], include_in_schema=False)


def _page(env: Environment, page: str) -> Callable[[Request], HTMLResponse]:
    template = env.get_template(f"{page}.html")

    def render(request: Request) -> HTMLResponse:
        token = request.query_params.get("token", "")
        html = template.render(
            page=page,
            title=PAGES[page],
            pages=PAGES,
            static=lambda name: f"/static/{name}" + (f"?token={quote(token, safe='')}" if token else ""),
        )
        return HTMLResponse(html)

    render.__name__ = f"page_{page}"
    return render
