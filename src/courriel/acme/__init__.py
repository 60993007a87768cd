"""Certificates from an ACME CA (RFC 8555): account, order, HTTP-01 challenge, renewal.

- :mod:`.jws`: the account key and the signed requests (JWS, ES256).
- :mod:`.client`: the protocol (directory, nonces, account, order, challenges, finalize).
- :mod:`.challenges`: HTTP-01 tokens, in memory and on disk (the ``cert renew`` command and
  the running server's http listener are different processes).
- :mod:`.http`: the web part answering ``/.well-known/acme-challenge/{token}``.
- :mod:`.issue`: obtain or renew the certificate and install it where ``[tls]`` points.
- :mod:`.service`: the background renewal in ``courriel serve``.
"""
