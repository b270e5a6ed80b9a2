"""DeepSeek-OCR as a native PyTorch model (DeepEncoder and the MoE decoder).

Not built yet: the model lands with its own issue. This package imports nothing from
the core, and torch is an optional extra (``pip install optical-memory[model]``).
"""

__all__: list[str] = []
