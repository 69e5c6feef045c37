"""svcviz: see how network servers work, from the kernel's side."""

__version__ = "0.1.0"
