"""Dataset tools: VOC files, extract, split, report."""
