"""The ``http`` listener: one ASGI application (Starlette on uvicorn) assembled from parts.

Each part (JMAP, webmail, metrics, client autoconfiguration, ACME challenges) lives in its own
package and is registered in :data:`courriel.web.app.PARTS`; see docs/ARCHITECTURE.md.
"""
