"""Request and response models: the public contract."""
