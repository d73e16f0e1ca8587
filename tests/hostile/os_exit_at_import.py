"""A case file that ends the process that imports it at once, with status 0."""

import os

os._exit(0)
