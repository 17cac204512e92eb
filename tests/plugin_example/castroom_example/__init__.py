"""An example third-party castroom plugin, installed by the tests as a real package.

The plugin itself is :mod:`castroom_example.plugin` (the ``castroom`` entry point). This
package module holds only what castroom reads without importing the plugin: the
commands it adds and their one-line help (the ``castroom.commands`` entry point), so
``castroom --help`` lists ``roster-refs`` and the plugin is imported only when it runs.
"""

COMMANDS = {"roster-refs": "Each talent imported from a roster, by its roster ref."}
