"""GAN models: pure nn.Modules plus fit/sample wrappers."""
