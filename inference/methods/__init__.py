"""Interactive segmentation methods, one package each; importing a package registers it."""
