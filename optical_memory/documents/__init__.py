"""The RAG front end: documents in, pages, text per page and vision tokens out."""

__all__: list[str] = []
