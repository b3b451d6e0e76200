"""Serving a trained model over HTTP (``labelgraph serve``): LitServe with dynamic batching, an API key, a web page.

Needs the ``serve`` extra (``pip install labelgraph[serve]``: LitServe, FastAPI, uvicorn, python-multipart).
:func:`~labelgraph.serving.server.serve` runs a server; :func:`~labelgraph.serving.server.build_server` builds one
without running it.
"""
