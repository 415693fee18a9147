"""The recorded runs: :mod:`.recipes` (one TOML file per run: load, plan, train, export, evaluate; ``python -m
wavelab campaign``) and :mod:`.gpu` (the papers' configurations on one GPU, ``scripts/gpu_campaign.sh``)."""
