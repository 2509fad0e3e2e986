"""The event contract: what comes in (events, labels), what goes out (decisions, alerts,
dead letters), and the closed vocabularies both use. Depends on nothing else in the package."""
