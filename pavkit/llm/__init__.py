"""LLM backend (transformers; vLLM optional). Imported only by `pavkit llm …` commands."""
