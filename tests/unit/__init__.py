"""The fast layer: the product's rules, one module of tests per module of the product (the
folders mirror it), pure functions and single classes, no subprocess, no server."""
