"""The Textual app, its screens and their tcss.

Imported only by the entry point. It draws events and never measures.
"""
