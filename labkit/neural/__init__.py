"""ReLU networks (placeholder until the neural branch is merged)."""
