"""Write the measured world numbers into README.md and docs/world.md, between markers.

    python -m igpt_lib world build --preset cpu --out runs/cpu   # world.json
    python bench/world_build.py                                   # cold-cache timings
    python docs/update_numbers.py                                 # this script
"""
import json
import re
from pathlib import Path

from igpt_lib.world.build import summary_table

ROOT = Path(__file__).resolve().parents[1]


def models_table(world, bench):
    cold = bench["presets"].get("cpu", {})
    lines = ["| size | hidden | layers | heads | params | pretraining tokens | peak LR | final loss | seconds (2 cores) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for s in world["config"]["sizes"]:
        info = world["pretrain"][s["name"]]
        lines.append(f"| {s['name']} | {s['hidden']} | {s['layers']} | {s['heads']} | "
                     f"{world['param_counts'][s['name']]:,} | {s['pretrain_tokens']:,} | {s['lr']:g} | "
                     f"{info['final_loss']:.3f} | {info['seconds']:.0f} |")
    if cold:
        lines += ["", f"Cold-cache `world build`: cpu {cold['wall_s']:.0f} s (goal 600 s), "
                      f"smoke {bench['presets'].get('smoke', {}).get('wall_s', float('nan')):.1f} s "
                      f"(goal 60 s), on {bench['machine']['cpus']} cores."]
    return "\n".join(lines)


def replace(path, marker, text):
    src = path.read_text()
    pattern = re.compile(rf"(<!-- {marker}:start -->\n).*?(<!-- {marker}:end -->)", re.S)
    assert pattern.search(src), f"{path}: marker {marker} not found"
    path.write_text(pattern.sub(lambda m: m.group(1) + text + "\n" + m.group(2), src))


def main():
    world = json.loads((ROOT / "runs" / "cpu" / "world.json").read_text())
    bench = json.loads((ROOT / "bench" / "results" / "world_build.json").read_text())
    table = summary_table(world)
    replace(ROOT / "README.md", "world-numbers", table)
    replace(ROOT / "docs" / "world.md", "world-numbers", table)
    replace(ROOT / "docs" / "world.md", "world-models", models_table(world, bench))
    print("updated README.md and docs/world.md")


if __name__ == "__main__":
    main()
