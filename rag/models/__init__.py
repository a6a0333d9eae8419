"""Models behind small protocols: embedders, generators (LLMs), the bundled weights, test fakes."""
