"""The book's tooling: the generator of book.md's tables and the fact-check (build.py) and the architecture diagrams
drawn from the configs (diagrams.py). They serve book.md and the chapters, not the model."""
