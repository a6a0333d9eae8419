"""The API's routes, one router per area: chat (and models), search, embeddings, documents."""
