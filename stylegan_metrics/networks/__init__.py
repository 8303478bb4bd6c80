"""Networks the metrics run: the registry of feature and similarity networks, Inception-v3, LPIPS-VGG16, the
toyfaces networks, attribute classifiers, weights resolution and arithmetic precision."""
