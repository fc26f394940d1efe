"""Reports rendered purely from the results store, the model store and the published reference numbers."""
