"""The report's HTML (a Jinja2 template, autoescaped). Self-contained: inline CSS, images as data URIs."""

TEMPLATE = r"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>transferkit report: {{ title }}</title>
<style>
 body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto; max-width: 1100px; padding: 1.2em 2em 4em; color: #1d232a; }
 h1 { font-size: 1.6em; margin-bottom: .2em; } h2 { border-bottom: 2px solid #e3e7ec; padding-bottom: .2em; margin-top: 2em; }
 .sub { color: #5b6673; } table { border-collapse: collapse; margin: .6em 0 1em; }
 th, td { border: 1px solid #dde2e8; padding: .3em .7em; text-align: right; } th { background: #f4f6f8; }
 td.l, th.l { text-align: left; } .warn { background: #fff5e0; border-left: 4px solid #f0a020; padding: .5em .9em; margin: .6em 0; }
 .ok { background: #eaf7ee; border-left: 4px solid #2e9e55; padding: .5em .9em; margin: .6em 0; }
 .note { color: #5b6673; font-size: .92em; } img.plot { max-width: 100%; border: 1px solid #eef0f3; margin: .4em .4em .4em 0; }
 .gallery { display: grid; grid-template-columns: repeat(auto-fill, minmax(200px, 1fr)); gap: .8em; }
 .gallery figure { margin: 0; border: 1px solid #e3e7ec; padding: .4em; } .gallery img { width: 100%; }
 .gallery figcaption { font-size: .85em; word-break: break-all; } code { background: #f4f6f8; padding: 0 .25em; }
 .row { display: flex; flex-wrap: wrap; gap: .5em; align-items: flex-start; }
</style>
</head>
<body>
<h1>{{ title }}</h1>
<div class="sub">transferkit {{ version }} · written {{ created }} · run folder <code>{{ run_dir }}</code></div>

<h2 id="data">Data</h2>
<table>
 <tr><th class="l">split</th>{% for c in classes %}<th>{{ c }}</th>{% endfor %}<th>total</th></tr>
 {% for split, row in counts.items() %}<tr><td class="l">{{ split }}</td>{% for c in classes %}<td>{{ row.get(c, 0) }}</td>{% endfor %}<td>{{ row.values() | sum }}</td></tr>{% endfor %}
</table>
<div class="note">layout: {{ layout }}; validation: {{ val_source }}; data root <code>{{ data_root }}</code></div>
{% if skipped %}
<div class="warn"><b>{{ skipped | length }} file(s) skipped</b>: {% for r, n in skipped_by_reason.items() %}{{ n }} {{ r }}{% if not loop.last %}, {% endif %}{% endfor %}</div>
<table><tr><th class="l">file</th><th class="l">reason</th></tr>
{% for s in skipped[:50] %}<tr><td class="l">{{ s.path }}</td><td class="l">{{ s.reason }}</td></tr>{% endfor %}</table>
{% if skipped | length > 50 %}<div class="note">… and {{ skipped | length - 50 }} more (all listed in config.json)</div>{% endif %}
{% else %}<div class="ok">No files skipped.</div>{% endif %}
{% if exact_duplicates or near_duplicates %}
<div class="warn"><b>Leakage warning</b>: {{ exact_duplicates | length }} identical file pair(s) and {{ near_duplicates | length }}
 near-duplicate pair(s) (perceptual-hash distance ≤ {{ max_distance }}) appear in two different splits; test scores may be inflated.</div>
<table><tr><th class="l">split A</th><th class="l">file A</th><th class="l">split B</th><th class="l">file B</th><th>distance</th></tr>
{% for d in exact_duplicates[:30] %}<tr><td class="l">{{ d.a_split }}</td><td class="l">{{ d.a }}</td><td class="l">{{ d.b_split }}</td><td class="l">{{ d.b }}</td><td>identical</td></tr>{% endfor %}
{% for d in near_duplicates[:30] %}<tr><td class="l">{{ d.a_split }}</td><td class="l">{{ d.a }}</td><td class="l">{{ d.b_split }}</td><td class="l">{{ d.b }}</td><td>{{ d.distance }}</td></tr>{% endfor %}
</table>
{% elif leakage_checked %}<div class="ok">Leakage check: no identical or near-duplicate images across splits (pHash distance ≤ {{ max_distance }}).</div>
{% else %}<div class="note">Near-duplicate check not run: {{ leakage_note }}</div>{% endif %}

<h2 id="model">Model card</h2>
<table>
{% for k, v in model_card %}<tr><th class="l">{{ k }}</th><td class="l">{{ v }}</td></tr>{% endfor %}
</table>

<h2 id="metrics">Test metrics with {{ (confidence * 100) | round | int }} % bootstrap intervals</h2>
<table><tr><th class="l">metric</th><th>test</th><th>{{ (confidence * 100) | round | int }} % interval</th><th>validation</th></tr>
{% for name, iv, val in headline %}<tr><td class="l">{{ name }}</td><td>{{ "%.3f" | format(iv.estimate) }}</td><td>{{ "[%.3f, %.3f]" | format(iv.low, iv.high) }}</td><td>{{ val }}</td></tr>{% endfor %}
</table>
<div class="note">Percentile bootstrap over {{ num_resamples }} resamples of the {{ num_test }} test examples{% if threshold is not none %}, decision threshold {{ "%.3f" | format(threshold) }} on P({{ positive }}){% endif %}.
 The intervals cover test-set sampling only, not seed-to-seed training variation (one seed in this run).</div>

<h3>Per class (test)</h3>
<table><tr><th class="l">class</th><th>precision</th><th>recall</th><th>F1</th><th>support</th></tr>
{% for c, m in per_class.items() %}<tr><td class="l">{{ c }}</td><td>{{ "%.3f" | format(m.precision) }}</td><td>{{ "%.3f" | format(m.recall) }}</td><td>{{ "%.3f" | format(m.f1) }}</td><td>{{ m.support }}</td></tr>{% endfor %}
</table>
<div class="row">{% for p in plots_main %}<img class="plot" alt="{{ p.alt }}" src="data:image/png;base64,{{ p.b64 }}">{% endfor %}</div>

{% if operating_point %}
<h2 id="operating-point">Operating point</h2>
{% set op = operating_point %}
<div class="{{ 'ok' if op.met_on_val else 'warn' }}">Target {{ op.target }} ≥ {{ op.target_value }} → threshold {{ "%.4f" | format(op.threshold) }} on P({{ positive }}), chosen on the validation split
 (validation sensitivity {{ "%.3f" | format(op.val_sensitivity) }}, specificity {{ "%.3f" | format(op.val_specificity) }}).</div>
<table><tr><th class="l">at this threshold, test</th><th>estimate</th><th>{{ (confidence * 100) | round | int }} % interval</th></tr>
{% for k, iv in op.test.items() %}<tr><td class="l">{{ k }}</td><td>{{ "%.3f" | format(iv.estimate) }}</td><td>{{ "[%.3f, %.3f]" | format(iv.low, iv.high) }}</td></tr>{% endfor %}
</table>
<div class="note">The threshold comes from {{ num_val }} validation examples; its own uncertainty is not in these intervals, so test sensitivity can fall below the target.</div>
{% endif %}

<h2 id="calibration">Calibration</h2>
{% if calibration %}
<table><tr><th class="l"></th><th>uncalibrated</th><th>temperature-scaled (T={{ "%.3f" | format(calibration.temperature) }})</th></tr>
<tr><td class="l">ECE, test</td><td>{{ "%.4f" | format(calibration.test_ece_before) }}</td><td>{{ "%.4f" | format(calibration.test_ece_after) }}</td></tr>
<tr><td class="l">ECE, validation</td><td>{{ "%.4f" | format(calibration.val_ece_before) }}</td><td>{{ "%.4f" | format(calibration.val_ece_after) }}</td></tr>
<tr><td class="l">NLL, test</td><td>{{ "%.4f" | format(calibration.test_nll_before) }}</td><td>{{ "%.4f" | format(calibration.test_nll_after) }}</td></tr>
<tr><td class="l">NLL, validation</td><td>{{ "%.4f" | format(calibration.val_nll_before) }}</td><td>{{ "%.4f" | format(calibration.val_nll_after) }}</td></tr>
</table>
<div class="note">The temperature is fitted on the validation split (NLL) {{ calibration.saved_note }}. ECE: top-label, {{ calibration.num_bins }} equal-width bins.</div>
{% for p in plots_calibration %}<img class="plot" alt="{{ p.alt }}" src="data:image/png;base64,{{ p.b64 }}">{% endfor %}
{% endif %}

<h2 id="training">Training curves</h2>
{% if plots_training %}{% for p in plots_training %}<img class="plot" alt="{{ p.alt }}" src="data:image/png;base64,{{ p.b64 }}">{% endfor %}
{% else %}<div class="note">No training history in metrics.json.</div>{% endif %}

<h2 id="errors">Misclassified test examples</h2>
{% if gallery %}
<div class="note">The {{ gallery | length }} most confident mistakes (of {{ num_errors }}), with Grad-CAM for the predicted class on the backbone's last block: where the model looked when it got it wrong.</div>
<div class="gallery">
{% for g in gallery %}<figure><img alt="Grad-CAM of {{ g.name }}" src="data:image/png;base64,{{ g.b64 }}">
<figcaption><b>{{ g.true }}</b> predicted as <b>{{ g.pred }}</b> ({{ "%.2f" | format(g.confidence) }})<br>{{ g.name }}</figcaption></figure>{% endfor %}
</div>
{% elif num_errors == 0 %}<div class="ok">No misclassified test examples.</div>
{% else %}<div class="note">{{ gallery_note }}</div>{% endif %}

<h2 id="not-included">Not in this report</h2>
<ul class="note">
{% for n in omissions %}<li>{{ n }}</li>{% endfor %}
</ul>
</body>
</html>
"""
