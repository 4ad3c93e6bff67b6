"""The named Cypher library (``queries/library/*.cypher``) and the backends' internal templates.

Importing this package reads no file; the library is loaded on first use.
"""
