"""`lab diagnose`: the three-step IKE triage, automated, on any capture and charon log.

sources (what was given) -> facts (what captures and logs show) -> engine (the catalogue's
classes in order) -> render (text in English and Chinese, or JSON). The classes are data:
catalogue.yaml.
"""
