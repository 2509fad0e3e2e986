"""Online models: half-space trees for anomaly scores, label classifiers, and the
progressive validation that measures them against delayed labels."""
