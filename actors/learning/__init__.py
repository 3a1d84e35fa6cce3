"""Local learning for the market: MNIST, the split CNN, DO training, MO fine-tuning."""
