"""Pictures: class maps and Grad-CAM over images, plots (t-SNE, label graph, PR curves, per-class AP), and reports."""
