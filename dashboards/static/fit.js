// Plotly neither wraps a figure's title nor makes room for a legend that wraps onto more lines: on a phone
// a long title ran off its figure, and a legend (or the month menu) ran into the panels' titles. After
// each drawing this breaks a title wider than its figure into lines, moves the legend and the menu below
// the title, and grows the figure's top by what that takes, its panels keeping their size. A figure whose
// title, legend and menu already clear each other and the panels (on a wide screen) is left as it is.
(function () {
  "use strict";
  // between the title, the legend or menu, and the panels
  var GAP = 6;

  function box(gd, element) {
    if (!element) return null;
    var outer = gd.getBoundingClientRect(), inner = element.getBoundingClientRect();
    if (!inner.width || !inner.height) return null;
    return { left: inner.left - outer.left, right: inner.right - outer.left,
             top: inner.top - outer.top, bottom: inner.bottom - outer.top };
  }

  function overlap(a, b) {
    return a && b && Math.min(a.right, b.right) - Math.max(a.left, b.left) > 0
      && Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top) > 0;
  }

  function plain(markup) {
    var decoder = document.createElement("textarea");
    decoder.innerHTML = markup.replace(/<[^>]*>/g, "");
    return decoder.value;
  }

  // The title's text -> the same text, each of its lines (a `<sup>` note too) broken at spaces to fit `room` px.
  function wrap(gd, text, room) {
    var title = gd.querySelector(".g-gtitle text");
    var ruler = title.cloneNode(false);
    ruler.removeAttribute("transform");
    ruler.setAttribute("visibility", "hidden");
    title.parentNode.appendChild(ruler);
    // plotly draws a `<sup>` at 70 % of the title's size
    var noteSize = parseFloat(getComputedStyle(title).fontSize) * 0.7 + "px";
    var lines = text.split(/<br\s*\/?>/i).map(function (line) {
      var note = /^<sup>(.*)<\/sup>$/i.exec(line);
      var words = (note ? note[1] : line).split(" "), kept = [], current = "";
      ruler.style.fontSize = note ? noteSize : "";
      words.forEach(function (word) {
        var tried = current ? current + " " + word : word;
        ruler.textContent = plain(tried);
        if (current && ruler.getComputedTextLength() > room) {
          kept.push(current);
          current = word;
        } else {
          current = tried;
        }
      });
      kept.push(current);
      return kept.map(function (part) { return note ? "<sup>" + part + "</sup>" : part; }).join("<br>");
    });
    ruler.remove();
    return lines.join("<br>");
  }

  function fit(gd) {
    var layout = gd._fullLayout;
    if (gd._fitting || !layout || !gd.layout.title) return;
    var state = gd._fit;
    if (!state) {
      var menu = (gd.layout.updatemenus || [])[0], base = { "margin.t": layout.margin.t, height: layout.height };
      if (gd.layout.legend && gd.layout.legend.y !== undefined) base["legend.y"] = gd.layout.legend.y;
      if (menu) {
        base["updatemenus[0].y"] = menu.y;
        base["updatemenus[0].yanchor"] = menu.yanchor;
      }
      state = gd._fit = { title: gd.layout.title.text || "", shown: null, width: layout.width, changed: false,
                          rounds: 0, base: base };
    }
    // A menu pick puts in its own title: that one is the title to fit from now on.
    if (gd.layout.title.text !== state.shown && gd.layout.title.text !== state.title) {
      state.title = gd.layout.title.text;
      state.rounds = 0;
    }
    var update = {};
    if (layout.width !== state.width) {
      state.rounds = 0;
      if (state.changed) {
        // Another width: start again from the figure as the page drew it.
        update = Object.assign({}, state.base, { "title.text": state.title });
        state.changed = false;
      }
    }
    if (!Object.keys(update).length && state.rounds < 3) {
      var titleBox = box(gd, gd.querySelector(".g-gtitle"));
      var edge = layout.width - layout.title.pad.l;
      var wrapped = titleBox && titleBox.right > edge ? wrap(gd, state.title, edge - layout.title.pad.l) : null;
      if (wrapped !== null && wrapped !== gd.layout.title.text) {
        update["title.text"] = wrapped;
      } else {
        update = makeRoom(gd, titleBox);
      }
      if (Object.keys(update).length) {
        state.rounds += 1;
        state.changed = true;
      }
    }
    state.width = layout.width;
    if (!Object.keys(update).length) return;
    if ("title.text" in update) state.shown = update["title.text"];
    if ("height" in update) {
      // The figure's box was made as tall as the page drew it; plotly stops following the page's width
      // once a relayout sets the height, unless told to go on.
      gd.style.height = update.height + "px";
      update.autosize = true;
    }
    gd._fitting = true;
    Plotly.relayout(gd, update).then(function () {
      gd._fitting = false;
      fit(gd);
    }, function () { gd._fitting = false; });
  }

  // The title drawn -> the layout moving the legend and the menu below it and the panels below them, or {}.
  function makeRoom(gd, titleBox) {
    var layout = gd._fullLayout, top = layout._size.t;
    var legend = box(gd, gd.querySelector(".legend"));
    var menu = box(gd, gd.querySelector(".updatemenu-header-group"));
    // The top panels' titles sit above the plot, and move with it.
    var notes = [], above = 0;
    Array.prototype.forEach.call(gd.querySelectorAll(".annotation"), function (note) {
      var b = box(gd, note);
      if (b && b.bottom <= top + 1 && b.top < top) {
        notes.push(b);
        above = Math.max(above, top - b.top);
      }
    });
    var clear = titleBox ? titleBox.bottom + GAP : 0;
    var legendCrowded = legend && (legend.top < clear || legend.bottom + GAP > top - above);
    var menuCrowded = menu && (overlap(menu, titleBox) || overlap(menu, legend)
      || notes.some(function (note) { return overlap(menu, note); }));
    if (!legendCrowded && !menuCrowded) return {};
    var legendTop = legend ? Math.max(legend.top, clear) : clear;
    var legendBottom = legend ? legendTop + legend.bottom - legend.top : clear;
    var menuTop = clear, menuBottom = clear;
    if (menu) {
      // Beside the legend when both fit on one row, else below it.
      var beside = !legend || legend.right + GAP < layout.width - (menu.right - menu.left);
      menuTop = beside ? clear : legendBottom + GAP;
      menuBottom = menuTop + menu.bottom - menu.top;
    }
    var grow = Math.max(0, Math.ceil(Math.max(legendBottom, menuBottom) + GAP + above - top));
    var height = layout.height + grow;
    var update = { "margin.t": layout.margin.t + grow, height: height };
    if (legend) update["legend.y"] = 1 - legendTop / height;
    if (menu) {
      update["updatemenus[0].y"] = 1 + (top + grow - menuTop) / layout._size.h;
      update["updatemenus[0].yanchor"] = "top";
    }
    return update;
  }

  function watch(gd) {
    var again = function () { fit(gd); };
    ["plotly_afterplot", "plotly_relayout", "plotly_update", "plotly_restyle"].forEach(function (name) {
      gd.on(name, again);
    });
    if (gd._fullLayout) fit(gd);
  }

  Array.prototype.forEach.call(document.querySelectorAll(".plotly-graph-div"), function (gd) {
    if (gd.on) watch(gd);
  });
})();
