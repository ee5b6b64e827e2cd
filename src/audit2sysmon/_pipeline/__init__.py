"""How a conversion reads (private): one reader in this process (`reader`), or worker
processes over chunks of the input with the seams proved (`parallel`)."""
__all__: list[str] = []
