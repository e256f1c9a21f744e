"""The dashboard at `/`: a few HTML pages, their vendored scripts, and the login that opens a session.

The pages are one more client of the contract: `static/dashboard.js` reads everything it shows through the public
API's read operations (`/v1/...`), authenticated by the session cookie (the contract's `DashboardSession` scheme,
accepted by GET operations only). This package serves only what a browser needs around that:
- `GET /`, `/runs/{id}`, `/compare`: the page shell (static HTML, no inline script), or a redirect to the login;
- `GET /login`: the login form, or, with `?token=`, a one-time link of `createLoginLink` spent for a session;
- `POST /login` (an organisation key from the form) and `POST /logout` (with the page's CSRF token);
- `/static/...`: the page's script and styles and uPlot (MIT, vendored with its licence; no CDN, no Node).
Every answer carries a Content-Security-Policy that allows scripts from this origin only.
"""

from tally_server.dashboard.pages import dashboard_routes

__all__ = ["dashboard_routes"]
