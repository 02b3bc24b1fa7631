"""Transforms between user data and the tensors the GANs see."""
