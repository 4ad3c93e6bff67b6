"""Adapters and alignment for LightPAIR: LoRA (``lora.py``), MultiLoRA (``multilora.py``), the
ΔW spectrum analysis (``spectrum.py``), the adapter comparison (``compare.py``) and ULMA /
point-wise DPO (``ulma.py``). Nothing heavy is imported here.
"""
