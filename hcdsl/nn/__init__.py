"""PyTorch modules shared by both backends: layers, embeddings, mixing-coefficient generators."""
