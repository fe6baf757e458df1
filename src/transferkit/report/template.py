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
 td.undefined { color: #8a5a00; text-align: left; font-size: .92em; }
 .texts { display: grid; gap: .7em; } .textcard { border: 1px solid #e3e7ec; padding: .5em .8em; }
 .textcard .meta { font-size: .88em; color: #5b6673; } p.attributed { margin: .35em 0; font-size: 1.05em; line-height: 1.9; white-space: pre-wrap; }
 span.tok { border-radius: 3px; padding: .05em .1em; } .legend { margin: .5em 0; }
</style>
</head>
<body>
<h1>{{ title }}</h1>
<div class="sub">transferkit {{ version }} · written {{ created }} · run folder <code>{{ run_dir }}</code></div>

{% if warnings %}<div class="warn"><b>{{ warnings | length }} warning(s)</b><ul>{% for w in warnings %}<li>{{ w }}</li>{% endfor %}</ul></div>{% endif %}

<h2 id="data">Data</h2>
<table>
 <tr><th class="l">split</th>{% for c in classes %}<th>{{ c }}</th>{% endfor %}<th>total</th></tr>
 {% for split, row in data.counts.items() %}<tr><td class="l">{{ split }}</td>{% for c in classes %}<td>{{ row.get(c, 0) }}</td>{% endfor %}<td>{{ row.values() | sum }}</td></tr>{% endfor %}
</table>
<div class="note">{% for n in data.notes %}{{ n }}{% if not loop.last %}; {% endif %}{% endfor %}</div>
{% set what = "file(s)" if data.unit == "image" else "row(s)" %}
{% if data.skipped %}
<div class="warn"><b>{{ data.skipped | length }} {{ what }} skipped</b>: {% for r, n in data.skipped_by_reason.items() %}{{ n }} {{ r }}{% if not loop.last %}, {% endif %}{% endfor %}</div>
<table><tr><th class="l">{{ "file" if data.unit == "image" else "row (file:line)" }}</th><th class="l">reason</th></tr>
{% for s in data.skipped[:50] %}<tr><td class="l">{{ s.where }}</td><td class="l">{{ s.reason }}</td></tr>{% endfor %}</table>
{% if data.skipped | length > 50 %}<div class="note">… and {{ data.skipped | length - 50 }} more (all listed in config.json)</div>{% endif %}
{% else %}<div class="ok">No {{ what }} skipped.</div>{% endif %}
{% if data.duplicates %}
{% set conflicting = data.duplicates | selectattr("conflicting") | list %}
<div class="{{ 'warn' if conflicting else 'note' }}"><b>{{ data.duplicates | length }} text(s) occur more than once</b> in the data
 ({{ conflicting | length }} with different labels); every copy of a text stays in one split, so they do not leak between splits.</div>
<table><tr><th class="l">text</th><th class="l">rows</th><th class="l">labels</th></tr>
{% for d in data.duplicates[:20] %}<tr><td class="l">{{ d.text }}</td><td class="l">{{ d.where | join(", ") }}</td><td class="l">{{ d.labels | join(", ") }}{% if d.conflicting %} (conflict){% endif %}</td></tr>{% endfor %}
</table>
{% if data.duplicates | length > 20 %}<div class="note">… and {{ data.duplicates | length - 20 }} more (all listed in config.json)</div>{% endif %}
{% endif %}
{% if data.conflicting_labels %}
<div class="warn"><b>Conflicting labels</b>: {{ data.conflicting_labels | length }} {{ data.unit }}(s) are filed under more than one
 class (identical copies with different labels), so at least one copy of each is mislabelled: {{ data.conflicting_advice }}.</div>
<table><tr><th class="l">classes</th><th class="l">copies (split, class)</th></tr>
{% for c in data.conflicting_labels[:20] %}<tr><td class="l">{{ c.classes | join(", ") }}</td><td class="l">{% for d in c.copies %}{{ d.path }} ({{ d.split }}, {{ d["class"] }}){% if not loop.last %}<br>{% endif %}{% endfor %}</td></tr>{% endfor %}
</table>
{% if data.conflicting_labels | length > 20 %}<div class="note">… and {{ data.conflicting_labels | length - 20 }} more (all listed in config.json)</div>{% endif %}
{% endif %}
{% if data.look_alike_conflicts %}
<div class="warn"><b>Look-alike images under different classes</b>: {{ data.look_alike_conflicts | length }} pair(s) look the same
 ({{ data.near_rule }}) but carry different labels: the same picture re-saved, resized or lightly edited, with one label wrong, or
 classes that the images cannot tell apart. What to do: {{ data.conflicting_advice }}.</div>
<table><tr><th class="l">image A (split, class)</th><th class="l">image B (split, class)</th><th>distance</th></tr>
{% for c in data.look_alike_conflicts[:20] %}<tr><td class="l">{{ c.a }} ({{ c.a_split }}, {{ c.a_class }})</td><td class="l">{{ c.b }} ({{ c.b_split }}, {{ c.b_class }})</td><td>{{ c.distance }}</td></tr>{% endfor %}
</table>
{% if data.look_alike_conflicts | length > 20 %}<div class="note">… and {{ data.look_alike_conflicts | length - 20 }} more (all listed in report.json)</div>{% endif %}
{% endif %}
{% if data.identical or data.near %}
<div class="warn"><b>Leakage warning</b>: {{ data.identical | length }} identical {{ data.unit }} pair(s) and {{ data.near | length }}
 near-duplicate pair(s) ({{ data.near_rule }}) appear in two different splits; test scores may be inflated.</div>
<table><tr><th class="l">split A</th><th class="l">{{ data.unit }} A</th><th class="l">split B</th><th class="l">{{ data.unit }} B</th><th>{{ "distance" if data.unit == "image" else "text (B)" }}</th></tr>
{% for d in data.identical[:30] %}<tr><td class="l">{{ d.a_split }}</td><td class="l">{{ d.a }}</td><td class="l">{{ d.b_split }}</td><td class="l">{{ d.b }}</td><td class="l">identical{% if d.get('conflicting') %}, labels differ ({{ d.get('a_class') }} / {{ d.get('b_class') }}){% endif %}{% if d.get('text') %}: {{ d.get('text') }}{% endif %}</td></tr>{% endfor %}
{% for d in data.near[:30] %}<tr><td class="l">{{ d.a_split }}</td><td class="l">{{ d.a }}{% if d.get('a_text') %}: {{ d.get('a_text') }}{% endif %}</td><td class="l">{{ d.b_split }}</td><td class="l">{{ d.b }}</td><td class="l">{% if data.unit == "image" %}{{ d.distance }}{% else %}{{ d.text }}{% endif %}</td></tr>{% endfor %}
</table>
{% elif data.leakage_checked %}<div class="ok">Leakage check: no identical or near-duplicate {{ data.unit }}s across splits ({{ data.near_rule }}).</div>
{% else %}<div class="note">Near-duplicate check not run: {{ data.leakage_note }}{% if not data.identical %} (no identical {{ data.unit }}s across splits){% endif %}</div>{% endif %}

<h2 id="model">Model card</h2>
<table>
{% for k, v in model_card %}<tr><th class="l">{{ k }}</th><td class="l">{{ v }}</td></tr>{% endfor %}
</table>

{% if selection %}
<h2 id="selection">Model selection</h2>
<div class="ok">Chosen by <code>--model auto</code>: <b>{{ selection.best }}</b>, the top of the ranking below (evidence from the training split only; ranked for strategy <code>{{ selection.strategy }}</code>{% if selection.evidence_scores %}, ties broken by {{ selection.evidence_scores | join(", ") }}{% endif %}).</div>
{% for p in selection.plots %}<img class="plot" alt="{{ p.alt }}" src="data:image/png;base64,{{ p.b64 }}">{% endfor %}
<table><tr><th>rank</th><th class="l">candidate</th><th class="l">status</th><th>predicted accuracy [95 %]</th><th>latency p50 ms</th><th>parameters</th><th>Pareto</th><th class="l">why</th></tr>
{% for r in selection.rows %}<tr><td>{{ r.rank }}</td><td class="l">{{ r.label }}</td><td class="l">{{ r.status }}</td><td>{{ r.predicted }}</td><td>{{ r.latency }}</td><td>{{ r.params }}</td><td>{{ r.front }}</td><td class="l note">{{ r.why }}</td></tr>{% endfor %}
</table>
<div class="note">Rule: {{ selection.rule }}{% for n in selection.notes %} {{ n }}{% endfor %}</div>
{% endif %}

<h2 id="metrics">Test metrics with {{ (confidence * 100) | round | int }} % bootstrap intervals</h2>
<table><tr><th class="l">metric</th><th>test</th><th>{{ (confidence * 100) | round | int }} % interval</th><th>validation</th></tr>
{% for name, iv, val, why in headline %}<tr><td class="l">{{ name }}</td>{% if why %}<td class="undefined" colspan="2" title="{{ why }}">undefined: {{ why }}</td>{% else %}<td>{{ "%.3f" | format(iv.estimate) }}</td><td class="ci">{{ "[%.3f, %.3f]" | format(iv.low, iv.high) }}</td>{% endif %}<td>{{ val }}</td></tr>{% endfor %}
</table>
<div class="note">Percentile bootstrap over {{ num_resamples }} resamples of the {{ num_test }} test examples{% if threshold is not none %}, decision threshold {{ "%.3f" | format(threshold) }} on P({{ positive }}){% endif %}.
 The intervals cover test-set sampling only, not seed-to-seed training variation (one seed in this run).</div>

<h3>Per class (test)</h3>
<table><tr><th class="l">class</th><th>precision</th><th>recall</th><th>F1</th><th>support</th></tr>
{% for c, m in per_class.items() %}<tr><td class="l">{{ c }}</td><td>{{ "%.3f" | format(m.precision) }}</td><td>{{ "%.3f" | format(m.recall) }}</td><td>{{ "%.3f" | format(m.f1) }}</td><td>{{ m.support }}</td></tr>{% endfor %}
</table>
<div class="row">{% for p in plots_main %}<img class="plot" alt="{{ p.alt }}" src="data:image/png;base64,{{ p.b64 }}">{% endfor %}</div>
{% if plot_key %}<div class="note">The plots' fonts on this machine cannot draw some class names, so the plots number them:
{% for short, name in plot_key.items() %}{{ short }} = {{ name }}{% if not loop.last %}; {% endif %}{% endfor %}.</div>{% endif %}

{% if operating_point %}
<h2 id="operating-point">Operating point</h2>
{% set op = operating_point %}
<div class="{{ 'ok' if op.met_on_val else 'warn' }}">Target {{ op.target }} ≥ {{ op.target_value }} → threshold {{ "%.4f" | format(op.threshold) }} on P({{ positive }}), chosen on the validation split
 (validation sensitivity {{ "%.3f" | format(op.val_sensitivity) }}, specificity {{ "%.3f" | format(op.val_specificity) }}).
{% if (op.threshold_calibrated - op.threshold) | abs > 0.00005 %} On the temperature-scaled probability that predict and evaluate use, the same cut is {{ "%.4f" | format(op.threshold_calibrated) }}.{% endif %}</div>
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
{% if gallery.items %}
<div class="note">The {{ gallery.items | length }} most confident mistakes (of {{ num_errors }}), with {{ gallery.method }}.</div>
{% if gallery.note %}<div class="warn">{{ gallery.note }}</div>{% endif %}
{% if gallery.kind == "image" %}
<div class="gallery">
{% for g in gallery.items %}<figure><img alt="Grad-CAM of {{ g.name }}" src="data:image/png;base64,{{ g.b64 }}">
<figcaption><b>{{ g.true }}</b> predicted as <b>{{ g.pred }}</b> ({{ "%.2f" | format(g.confidence) }})<br>{{ g.name }}</figcaption></figure>{% endfor %}
</div>
{% else %}
<div class="legend note">attribution to the predicted class:
 <span class="tok" style="background-color: rgba(214, 39, 40, 0.80)">against</span>
 <span class="tok" style="background-color: rgba(214, 39, 40, 0.30)">weakly against</span>
 <span class="tok" style="background-color: rgba(46, 158, 85, 0.30)">weakly for</span>
 <span class="tok" style="background-color: rgba(46, 158, 85, 0.80)">for</span></div>
<div class="texts">
{% for g in gallery.items %}<div class="textcard"><div class="meta"><b>{{ g.true }}</b> predicted as <b>{{ g.pred }}</b> ({{ "%.2f" | format(g.confidence) }}) · <code>{{ g.name }}</code></div>
<p class="attributed">{% for seg in g.segments %}{% if seg.score is none %}{{ seg.text }}{% else %}<span class="tok" style="background-color: {{ seg.color }}" title="{{ '%+.2f' | format(seg.score) }}">{{ seg.text }}</span>{% endif %}{% endfor %}</p>
{% if g.truncated %}<div class="note">The text is longer than the model's token limit; the uncoloured end was not seen.</div>{% endif %}</div>
{% endfor %}
</div>
{% endif %}
{% elif num_errors == 0 %}<div class="ok">No misclassified test examples.</div>
{% else %}<div class="note">{{ gallery.note or "Not shown (--gallery 0)." }}</div>{% endif %}

<h2 id="not-included">Not in this report</h2>
<ul class="note">
{% for n in omissions %}<li>{{ n }}</li>{% endfor %}
</ul>
</body>
</html>
"""
