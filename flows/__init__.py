"""The data office's pipelines, one package each."""
