"""Dashboards stage: the warehouse's `rpt_` tables -> an offline static HTML site (`render.render_site`)."""
