"""The papers' model zoo: architectures, output heads, losses, training, the model store and ART estimators."""
