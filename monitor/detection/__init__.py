"""Detection: per-entity state and typologies (``entities``), features (``features``),
online models (``models``) and the alert policy that turns scores into alerts."""
