"""Feature building blocks kept in event time: sliding windows, membership sketches, scaling."""
