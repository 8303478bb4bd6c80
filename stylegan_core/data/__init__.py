"""Data: image folders and zips, image conversions, CelebA attribute names and the procedural toyfaces world."""
