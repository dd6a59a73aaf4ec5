"""The core: the book's formulas, their validation, parameters, data and files (NumPy only).

Rooms, in import order (each imports only those above it):
``errors`` → ``backend`` → ``validate`` → ``activations``, ``losses`` → ``params`` →
``batching`` → ``single``, ``batched`` → ``gradcheck``; ``data`` and ``io`` beside them.
``import mlp_core`` loads every one of them.
"""
