"""The inspector: server-rendered HTML pages under /admin, on the admin model.

Templates (Jinja, autoescaped) are in templates/, the one stylesheet and the small
script in static/. The pages read and act only through `gateway.admin.model`; this
package adds presentation: charts.py (dashboard geometry), format.py (times, sizes,
status pills, bodies) and the views.
"""
