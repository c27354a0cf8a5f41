"""Imported by the KZG pool's forkserver: loads the trusted setup once so every forked worker shares it."""

from attribution.da.kzg import trusted_setup

trusted_setup()
